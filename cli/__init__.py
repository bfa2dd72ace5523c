"""Click groups only: parse, call one function, print. No logic of its own."""
