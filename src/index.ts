/**
 * pixl-server-multi: `components: [require('pixl-server-multi')]` gives a pixl-server
 * app the `MultiServer` component. The module's export is the component class itself,
 * so `require` returns it and `import MultiServer from 'pixl-server-multi'` works too.
 */
import MultiServer = require('./component');
export = MultiServer;
