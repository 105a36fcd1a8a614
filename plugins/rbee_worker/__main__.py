from rbee_worker.cli import main

main()
