from paymq_tools.chaos.cli import chaos_app

chaos_app(prog_name="python -m paymq_tools.chaos")
