from paymq.chaos.cli import chaos_app

chaos_app(prog_name="python -m paymq.chaos")
