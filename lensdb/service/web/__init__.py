"""The web view's static assets (index.html, style.css and the scripts api.js, store.js,
query.js, timeline.js, play.js, main.js), served by
lensdb.service.routes.web."""
