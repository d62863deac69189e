"""The Privx dialect of the SMTP settings API (a facade over outbound.mail.services)."""
