"""The web console's files: static/ holds the page (HTML, CSS, ES modules), served at /console/ by
renlian/api/console.py. No build step: what is here is what the browser runs."""
