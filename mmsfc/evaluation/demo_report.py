# Copyright (c) mmsfc contributors. All rights reserved.
"""The report of ``tools/demo.py``: per-variant numbers over seeds, tables, figure.

A *variant* is one CAM-network recipe of the paper's Table 4/5 ablations
(``VARIANT_NAMES``); each is scored on its own map (``VARIANT_MAP``: Base and
I on the classifier CAM ``M_W``, SFC and its ablations on ``M_final``).
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

#: Display names, in table order.
VARIANT_NAMES = dict(base='Base (L_cls)', ibr='I: + IBR', sfc='SFC (IBR + L_DW^P + L_DW^W)',
                     no_lp='SFC without L_DW^P', no_lw='SFC without L_DW^W',
                     no_dc='SFC without DC')
#: The map each variant is scored on (paper Table 4: Base and I on M_W).
VARIANT_MAP = dict(base='w', ibr='w', sfc='final', no_lp='final', no_lw='final',
                   no_dc='final')


def head_tail_classes(meta: dict) -> Tuple[List[str], List[str]]:
    """Head classes (drawn into >= 30 % of images) and tail classes (<= 3 %).

    Args:
        meta (dict): The dataset's ``meta.json`` (``classes`` with the
            background first, ``target_frequencies`` per object class).
    """
    names, freqs = meta['classes'][1:], meta['target_frequencies']
    head = [n for n, f in zip(names, freqs) if f >= 0.3]
    tail = [n for n, f in zip(names, freqs) if f <= 0.03]
    return head, tail


def mean_std(values: Sequence[float]) -> str:
    """``mean ± std`` (ddof 1) to one decimal; the value alone for one seed."""
    values = np.asarray(values, np.float64)
    if values.size == 1:
        return f'{values[0]:.1f}'
    return f'{values.mean():.1f} ± {values.std(ddof=1):.1f}'


def summarize_runs(runs: Dict[str, List[dict]], pipeline: Dict[str, List[float]],
                   meta: dict) -> dict:
    """Per variant: every reported number per seed, its mean and std over seeds.

    Args:
        runs (dict): Variant -> one dict per seed with ``seed``, ``untrained``
            and ``trained`` (the ``SFCClassBalanceMetric`` results before and
            after training, the variant's map of ``VARIANT_MAP`` first),
            ``train_time`` (s) and ``bg_offset``.
        pipeline (dict): Stage (``pseudo_label``, ``mask``,
            ``segmentation_crf``, ``segmentation_mask``) -> mIoU per seed of SFC.
        meta (dict): The dataset's ``meta.json``.

    Returns:
        dict: Variant -> ``map``, ``seeds``, ``values``, ``mean``, ``std``;
        ``pipeline``: stage -> ``values``, ``mean``; ``head_classes``,
        ``tail_classes``.
    """
    head, tail = head_tail_classes(meta)
    names = meta['classes']
    summary = {}
    for variant, results in runs.items():
        main = VARIANT_MAP[variant]
        rows = {}
        for key in ('mIoU_w', 'mIoU_p', 'mIoU_final', f'head_claim_{main}',
                    f'head_precision_{main}'):
            rows[key] = [float(r['trained'][key]) for r in results]
        rows['untrained_mIoU'] = [float(r['untrained']['mIoU']) for r in results]
        rows['mIoU'] = [float(r['trained']['mIoU']) for r in results]
        for cls in names:
            rows[f'IoU.{cls}'] = [float(r['trained'][f'IoU_{main}.{cls}']) for r in results]
        rows['tail_IoU'] = [float(np.mean([r['trained'][f'IoU_{main}.{c}'] for c in tail]))
                            for r in results]
        rows['head_IoU'] = [float(np.mean([r['trained'][f'IoU_{main}.{c}'] for c in head]))
                            for r in results]
        rows['train_time_s'] = [r['train_time'] for r in results]
        rows['bg_offset'] = [float(r['bg_offset']) for r in results]
        summary[variant] = dict(
            map=main, seeds=[r['seed'] for r in results],
            values=rows,
            mean={k: float(np.mean(v)) for k, v in rows.items()},
            std={k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in rows.items()})
    summary['pipeline'] = {k: dict(values=v, mean=float(np.mean(v))) for k, v in pipeline.items()}
    summary['head_classes'], summary['tail_classes'] = head, tail
    return summary


def format_report(summary: dict, meta: dict, backbone: str) -> str:
    """The stage table and the per-class table, mean ± std over seeds.

    Args:
        summary (dict): :func:`summarize_runs`'s result with ``names``
            (variant -> display name) added.
        meta (dict): The dataset's ``meta.json``.
        backbone (str): The backbone's display name for the title.
    """
    from prettytable import PrettyTable
    variants = [v for v in VARIANT_NAMES if v in summary]
    names = summary['names']
    stages = PrettyTable(['stage', 'score'] + [names[v] for v in variants])
    stages.align = 'l'
    labels = dict(untrained_mIoU='untrained network (headline map)', mIoU_w='M_W',
                  mIoU_p='M_P', mIoU_final='M_final = M_W + M_P', tail_IoU='tail-class IoU',
                  head_IoU='head-class IoU', bg_offset='background offset of the rule')
    for key, label in labels.items():
        stages.add_row(['CAM (train split)', label] +
                       [mean_std(summary[v]['values'][key]) for v in variants])
    for key, label in (('head_claim', 'tail pixels claimed by head classes (%)'),
                       ('head_precision', 'head-class precision (%)')):
        stages.add_row(['CAM (train split)', label] +
                       [mean_std(summary[v]['values'][f'{key}_{summary[v]["map"]}'])
                        for v in variants])
    for key, label in (('pseudo_label', 'pseudo labels, CRF (train split)'),
                       ('mask', 'pseudo labels, IRN "Mask" (train split)'),
                       ('segmentation_crf', 'DeepLabV2 on the CRF labels (val split)'),
                       ('segmentation_mask', 'DeepLabV2 on the IRN masks (val split)')):
        if key in summary['pipeline']:
            value = mean_std(summary['pipeline'][key]['values'])  # SFC's stages 2-4
            stages.add_row([label, 'mIoU'] + [value if v == 'sfc' else '' for v in variants])
    map_names = {'final': 'M_final', 'w': 'M_W', 'p': 'M_P'}
    per_class = PrettyTable(['class', 'images %'] + [
        f'{names[v]} ({map_names[summary[v]["map"]]})' for v in variants])
    per_class.align = 'l'
    order = np.argsort(meta['frequencies'])[::-1]
    for index in order:
        cls = meta['classes'][index + 1]
        per_class.add_row([cls, f'{100 * meta["frequencies"][index]:.1f}'] +
                          [mean_std(summary[v]['values'][f'IoU.{cls}']) for v in variants])
    per_class.add_row(['background', ''] +
                      [mean_std(summary[v]['values']['IoU.background']) for v in variants])
    return (f'SFC demo, backbone {backbone}: CAM mIoU and '
            f'per-class IoU (mean ± std over seeds)\n{stages}\n'
            f'head classes: {", ".join(summary["head_classes"])}; '
            f'tail classes: {", ".join(summary["tail_classes"])}\n{per_class}' +
            (f'\n{format_expectations(summary)}' if {'sfc', 'base'} <= set(variants) else ''))


def expectation_checks(summary: dict) -> List[Tuple[str, List[bool]]]:
    """What the paper leads us to expect of SFC against Base, checked per seed.

    CAM mIoU and tail-class IoU above Base; head-class precision not below
    and tail pixels claimed by head classes not above Base; IRN masks at
    least as good as the CRF labels, and DeepLabV2 on the masks at least as
    good as on the CRF labels (where those stages ran). Each variant on its
    own map; seeds paired in order.

    Args:
        summary (dict): :func:`summarize_runs`'s result with ``sfc`` and
            ``base`` of the same seeds.

    Returns:
        list[tuple[str, list[bool]]]: Each expectation and whether it holds
        in each seed.
    """
    sfc, base = summary['sfc'], summary['base']
    if sfc['seeds'] != base['seeds']:
        raise ValueError(f"SFC's seeds {sfc['seeds']} differ from Base's {base['seeds']}")

    def values(run, key):
        return run['values'][f'{key}_{run["map"]}' if key.startswith('head_') else key]

    # (expectation, first, second, strict): first > second if strict, else first >= second
    pairs = [('CAM mIoU above Base', values(sfc, 'mIoU'), values(base, 'mIoU'), True),
             ('tail-class IoU above Base', values(sfc, 'tail_IoU'), values(base, 'tail_IoU'),
              True),
             ('head-class precision not below Base', values(sfc, 'head_precision'),
              values(base, 'head_precision'), False),
             ('tail pixels claimed by head classes not above Base',
              values(base, 'head_claim'), values(sfc, 'head_claim'), False)]
    pipeline = {k: v['values'] for k, v in summary['pipeline'].items()}
    for better, worse, label in (('mask', 'pseudo_label', 'IRN masks not below the CRF labels'),
                                 ('segmentation_mask', 'segmentation_crf',
                                  'DeepLabV2 on the masks not below on the CRF labels')):
        if better in pipeline and worse in pipeline:
            pairs.append((label, pipeline[better], pipeline[worse], False))
    return [(label, [a > b if strict else a >= b for a, b in zip(first, second)])
            for label, first, second, strict in pairs]


def format_expectations(summary: dict) -> str:
    """:func:`expectation_checks` as a table: yes/no per seed and the count."""
    from prettytable import PrettyTable
    seeds = summary['sfc']['seeds']
    table = PrettyTable(['SFC against Base (the paper)'] + [f'seed {s}' for s in seeds] +
                        ['holds in'])
    table.align = 'l'
    for label, holds in expectation_checks(summary):
        table.add_row([label] + ['yes' if h else 'no' for h in holds] +
                      [f'{sum(holds)} of {len(holds)}'])
    return str(table)


def plot_class_iou(summary: dict, meta: dict, path: str, backbone: str) -> None:
    """Bars of per-class CAM IoU (mean, std over seeds) from head to tail, to ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    variants = [v for v in VARIANT_NAMES if v in summary]
    order = np.argsort(meta['frequencies'])[::-1]
    classes = [meta['classes'][i + 1] for i in order]
    freqs = [100 * meta['frequencies'][i] for i in order]
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
    width = 0.8 / len(variants)
    x = np.arange(len(classes))
    for k, variant in enumerate(variants):
        means = [summary[variant]['mean'][f'IoU.{c}'] for c in classes]
        stds = [summary[variant]['std'][f'IoU.{c}'] for c in classes]
        label = f'{summary["names"][variant]}, M_{summary[variant]["map"]}'
        ax.bar(x + (k - (len(variants) - 1) / 2) * width, means, width, yerr=stds,
               label=label, capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels([f'{c}\n{f:.1f}%' for c, f in zip(classes, freqs)], fontsize=8)
    ax.set_ylabel('CAM IoU (%)')
    ax.set_xlabel('class (share of training images), head → tail')
    ax.legend(fontsize=7, loc='upper right')
    ax.set_title('Per-class CAM IoU on the generated long-tailed set, '
                 f'{backbone}', fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
