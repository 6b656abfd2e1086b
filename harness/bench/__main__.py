"""``python -m harness.bench``: run the benchmarks and write their page."""

import sys

from harness.bench.performance import main

sys.exit(main())
