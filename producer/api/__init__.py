"""The HTTP payment API (`paymq api serve`): pay and ask for a payment's result over HTTP."""
