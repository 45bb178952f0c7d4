"""Find a lot, choose a space, book a time window and pay by mobile money."""
