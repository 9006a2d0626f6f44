from leadctl.cli.main import main

main()
