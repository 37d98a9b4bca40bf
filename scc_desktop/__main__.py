"""`python -m scc_desktop` runs the same entry point as the `scc-desktop` script."""

from scc_desktop.cli import main

raise SystemExit(main())
