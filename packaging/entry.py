"""PyInstaller's entry script: the same `main()` as the `scc-desktop` console script."""

from scc_desktop.cli import main

raise SystemExit(main())
