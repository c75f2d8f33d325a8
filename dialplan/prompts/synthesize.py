"""Generate the dialplan's Japanese prompts offline from a text table (dialplan/prompts/ja.tsv).

    python dialplan/prompts/synthesize.py TABLE OUTDIR [--keep DIR]

For every row ``name<TAB>text[<TAB>reading]`` it writes OUTDIR/<name>.wav: 8 kHz, mono, signed 16-bit
PCM, what Asterisk's format_wav plays without transcoding. Speech comes from pyopenjtalk-plus, whose
wheel carries the Open JTalk dictionary and the HTS voice "mei" (Nagoya Institute of Technology,
CC BY 3.0): nothing is downloaded. sox resamples the 48 kHz synthesis to 8 kHz and trims the silence
around it. A recording the ward made replaces a synthesised file: ``--keep DIR`` copies DIR/<name>.wav
(when it exists) instead of synthesising that row.

Run by scripts/pbx at provisioning (cached by the table's hash); prints one summary line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

RATE = 8000


@dataclass(frozen=True)
class Prompt:
    name: str      # e.g. cti/welcome -> sounds/ja/cti/welcome.wav
    text: str      # what the caller hears
    reading: str   # what the synthesiser is given (the text unless the table says otherwise)


def read_table(path: Path) -> list[Prompt]:
    """The table's rows; comments (#) and blank lines skipped. A malformed row stops the run."""
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
            raise ValueError(f"{path}:{number}: expected name<TAB>text[<TAB>reading]")
        name = fields[0]
        if name in seen or not all(part.replace("-", "").replace("_", "").isalnum() for part in name.split("/")):
            raise ValueError(f"{path}:{number}: duplicate or unsafe prompt name {name!r}")
        seen.add(name)
        reading = fields[2] if len(fields) == 3 and fields[2] else fields[1]
        prompts.append(Prompt(name, fields[1], reading))
    return prompts


def _write_wav(path: Path, samples: object, rate: int) -> None:
    import numpy as np

    pcm = np.clip(np.asarray(samples), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def synthesize(prompts: list[Prompt], outdir: Path, keep: Path | None = None) -> tuple[int, int]:
    """Write every prompt under outdir; returns (synthesised, copied recordings)."""
    # pyopenjtalk prints a notice about an optional ONNX reading model (not used) on stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk
    made = copied = 0
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        for prompt in prompts:
            target = outdir / f"{prompt.name}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            recording = keep / f"{prompt.name}.wav" if keep is not None else None
            if recording is not None and recording.is_file():
                shutil.copyfile(recording, target)
                copied += 1
                continue
            # pyopenjtalk prints a notice about an optional ONNX reading model (not used) on stdout.
            with contextlib.redirect_stdout(io.StringIO()):
                samples, rate = pyopenjtalk.tts(prompt.reading)
            _write_wav(raw, samples, rate)
            # 8 kHz mono 16-bit; a little headroom; the synthesiser's leading/trailing silence trimmed
            # (a 100 ms pad kept so consecutive date/time files do not run together).
            subprocess.run(
                ["sox", "-q", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                 str(target), "gain", "-n", "-3", "silence", "1", "0.02", "0.5%", "reverse",
                 "silence", "1", "0.02", "0.5%", "reverse", "pad", "0.05", "0.1"],
                check=True,
            )
            made += 1
    return made, copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--keep", type=Path, default=None, help="directory of recordings that replace rows")
    args = parser.parse_args(argv)
    prompts = read_table(args.table)
    made, copied = synthesize(prompts, args.outdir, args.keep)
    print(f"prompts: {made} synthesised, {copied} recordings kept -> {args.outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
