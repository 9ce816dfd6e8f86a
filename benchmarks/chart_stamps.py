"""The script both browser benchmarks install before the app loads: it stamps, in the page's own clock, when
the websocket opens, the last key press, and every websocket message that brings a Vega-Lite chart (the
browser draws it within a frame).

Times are epoch milliseconds (`performance.timeOrigin + performance.now()`), so they compare with a
`time.time()` taken outside the browser (the cold start's spawn) as well as with each other (a key press
and the charts it brought). A key press clears the chart stamps: each slider move is timed on its own.
"""

STAMP = """
window.__wsOpen = 0;
window.__keyTime = 0;
window.__chartTimes = [];
const now = () => performance.timeOrigin + performance.now();
document.addEventListener('keydown', () => { window.__keyTime = now(); window.__chartTimes = []; }, true);
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new NativeWebSocket(...args);
  socket.addEventListener('open', () => { if (!window.__wsOpen) window.__wsOpen = now(); });
  socket.addEventListener('message', event => {
    const at = now();
    const note = text => { if (text.includes('vega-lite')) window.__chartTimes.push(at); };
    if (typeof event.data === 'string') note(event.data);
    else if (event.data instanceof Blob) event.data.text().then(note);
    else note(new TextDecoder().decode(event.data));
  });
  return socket;
};
Object.assign(window.WebSocket, NativeWebSocket);
window.WebSocket.prototype = NativeWebSocket.prototype;
"""
