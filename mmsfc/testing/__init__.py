# Copyright (c) mmsfc contributors. All rights reserved.
from .launch import free_port, run_on_free_port
from .toy_voc import TOY_CLASSES, generate_toy_voc

__all__ = ['TOY_CLASSES', 'generate_toy_voc', 'free_port', 'run_on_free_port']
