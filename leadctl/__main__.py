from leadctl.cli.entry import main

main()
