"""The ideas service: takes ideas in from business units, stores them, publishes the facts."""
