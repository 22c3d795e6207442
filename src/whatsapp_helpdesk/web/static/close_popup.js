// The "Connected" page: opened as HubSpot's pop-up, nothing more to do here. A file rather
// than an inline script, so that the Content-Security-Policy allows no inline script.
if (window.opener) { setTimeout(function () { window.close(); }, 1500); }
