"""The Selling Partner API source: Login with Amazon tokens, Orders v2026-01-01 searchOrders and the Reports bulk path."""
