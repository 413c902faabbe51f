"""`make rehearse`: python -m infra.rehearsal [OUT_DIR] (default: out/rehearse)."""

import sys
from pathlib import Path

from infra.rehearsal import rehearse

sys.exit(rehearse.main(Path(sys.argv[1]) if len(sys.argv) > 1 else rehearse.ROOT / "out" / "rehearse"))
