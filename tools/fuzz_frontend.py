"""Coverage-guided fuzzing of mipsc's front end with atheris (libFuzzer for Python).

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python tools/fuzz_frontend.py -max_total_time=300
    .venv/bin/python tools/fuzz_frontend.py crash-1234abcd    # replay one input

The property is the one tests/unit/test_fuzz_frontend.py checks (parse, verify, print, read the
print back, convert, lower, again): a failing input is written as crash-* into build/fuzz/, and
the corpus grows in build/fuzz/corpus, seeded from tests/fuzz_corpus (never written to).
The hypothesis tests need no atheris; this finds what random mutation alone does not reach.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit"))

with atheris.instrument_imports(include=["mipsc", "xdsl"]):
    from test_fuzz_frontend import check_frontend


def one_input(data: bytes) -> None:
    # libFuzzer's own -timeout replaces the test's SIGALRM watchdog (both would use SIGALRM).
    check_frontend(data.decode("utf-8", errors="replace"), timeout=None)


def main() -> None:
    work = ROOT / "build" / "fuzz"
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in (ROOT / "tests" / "fuzz_corpus").glob("*.mlir"):
        shutil.copy(seed, corpus / seed.name)
    args = [sys.argv[0], f"-artifact_prefix={work}/", "-timeout=20", "-rss_limit_mb=4096"]
    replay = [a for a in sys.argv[1:] if not a.startswith("-")]
    args += sys.argv[1:] if replay else [*sys.argv[1:], str(corpus)]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
