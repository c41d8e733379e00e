"""One settings module per situation: base (shared), local, test, production."""
