"""`python -m tools.residency`: the residency and privacy run (see run.py)."""

from tools.residency.run import main

raise SystemExit(main())
