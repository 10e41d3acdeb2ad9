"""Local stand-ins for outside services (Slack), reusable by every test."""
