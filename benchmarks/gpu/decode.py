"""A corpus folder with FLAC audio back to the release's PCM16 WAV layout: ``decode.py SRC DST``."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import soundfile as sf


def decode(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst``, every ``.flac`` written as a PCM16 ``.wav``; returns the files decoded."""
    n = 0
    for p in sorted(src.rglob("*")):
        if p.is_dir():
            continue
        q = dst / p.relative_to(src)
        q.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".flac":
            x, sr = sf.read(p, dtype="int16")
            sf.write(q.with_suffix(".wav"), x, sr, subtype="PCM_16")
            n += 1
        else:
            shutil.copy(p, q)
    return n


if __name__ == "__main__":
    print(f"decoded {decode(Path(sys.argv[1]), Path(sys.argv[2]))} files to {sys.argv[2]}")
