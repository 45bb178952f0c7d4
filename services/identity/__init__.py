"""Electronic identity accounts and the OpenID Connect provider (Da Nang ID)."""
