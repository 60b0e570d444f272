"""Voice of the customer: reviews, their sentiment and aspects, the service queue."""
