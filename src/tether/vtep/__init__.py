"""Hardware VTEPs: what a top-of-rack switch should hold (``desired``), what it holds
(``state.observe``), the transactions that get it there in the gateway's mode (``plan``) and
their OVSDB form (``encode``). These four are pure; the agent that runs them is the shell."""
