from lakegate.cli.main import main

main()
