// Counts each purchase's answer by its JSON `code` (flashsale.purchase.<CODE>), and answers
// that are not the service's JSON as flashsale.purchase.NOT_JSON, so the verdict can account
// for every purchase: bought, turned away, or unknown.
module.exports = { countAnswer };

function countAnswer(request, response, context, events, next) {
  let code = 'NOT_JSON';
  try {
    const body = JSON.parse(response.body);
    if (body && typeof body.code === 'string') code = body.code;
  } catch {
    /* a proxy's page, an empty body */
  }
  events.emit('counter', `flashsale.purchase.${code}`, 1);
  return next();
}
