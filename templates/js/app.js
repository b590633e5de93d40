// The `{{name}}` function: answers every request under `/{{name}}` with a
// plain-text greeting and the request's method and path.
//
// Built with `jco componentize` against wit/world.wit (see README.md). The
// engine serves wasi:http/incoming-handler through the `fetch` event, with
// the web's Request and Response.

addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  return new Response(`Hello from {{name}}!\n${request.method} ${url.pathname}${url.search}\n`, {
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}
