from rbee_queen.cli import main

main()
