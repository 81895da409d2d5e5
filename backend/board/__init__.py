"""What spans the domains: the board snapshot, the board events' payload contract and the live
event stream. It imports the domain packages; none of them imports it."""
