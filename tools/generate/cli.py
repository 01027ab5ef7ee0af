"""``gridlake generate``: the synthetic district, with a rich progress bar."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gridlake.config import load_settings
from tools.generate.config import load_gen_config
from tools.generate.run import generate

log = logging.getLogger(__name__)


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate ``--days`` nights of deliveries under DATA/landing and the truth under DATA/truth.

    ``--noise`` is a noise model (``default``/``second``) or a YAML file of overrides."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    settings = load_settings(getattr(args, "profile", None), data_root=getattr(args, "data", None))
    cfg = load_gen_config(scale=args.scale, days=args.days, start=args.start, seed=args.seed,
                          noise_file=getattr(args, "noise", None))
    data = Path(settings.data_root)
    log.info("generating scale=%s (%d houses), %d night(s) from %s, seed %d, noise model %s into %s",
             cfg.scale.name, cfg.scale.houses, cfg.days, cfg.start, cfg.seed, cfg.noise_model, data)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("generate", total=cfg.days * 2)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=step)

        summary = generate(cfg, data, progress)
    log.info("done in %.1fs: %d houses, %d grids, %d delivered rows", summary["seconds"], summary["houses"],
             summary["grids"], summary["records"])
    return 0
