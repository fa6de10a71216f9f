"""`python -m tools.chaos`: runs the fault campaign (see campaign.py)."""

from tools.chaos.campaign import main

raise SystemExit(main())
