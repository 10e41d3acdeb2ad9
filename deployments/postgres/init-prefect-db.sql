-- The Prefect server keeps its own database next to tickguard's (first start only).
CREATE DATABASE prefect OWNER tickguard;
