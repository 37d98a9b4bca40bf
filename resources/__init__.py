"""Icons and desktop files, shipped inside the package as `scc_desktop.resources`."""
