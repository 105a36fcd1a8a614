from rbee_keeper.cli import main

main()
