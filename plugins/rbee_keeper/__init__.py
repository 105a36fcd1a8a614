"""rbee-keeper: the command line a person types into."""
