"""``python -m harness.bench``: run the benchmarks and write their page."""

import sys

from harness.bench.code_execution import main

sys.exit(main())
