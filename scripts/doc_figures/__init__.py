"""The checks behind scripts/check_docs: each module finds one kind of quoted
figure in the docs and says where it comes from."""
