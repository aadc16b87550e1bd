from paymq.cli import main

main()
