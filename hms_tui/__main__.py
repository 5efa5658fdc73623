from hms_tui.cli import main

main()
