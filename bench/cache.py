"""Generated drives kept between bench runs: generating a large one takes minutes."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from sample_logs.generate import generate


def generated(out: Path, **options: Any) -> Path:
    """The drive ``sample_logs.generate`` writes into ``out`` with ``options``, generated
    once: a folder holding its ``truth.json`` is complete and is used as it is."""
    if not (out / "truth.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        generate(out, **options)
        print(f"generated {out} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out
