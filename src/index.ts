/**
 * pixl-server-multi: `components: [require('pixl-server-multi')]` gives a pixl-server
 * app the `MultiServer` component. The module's export is the component class itself,
 * so `require` returns it and `import MultiServer from 'pixl-server-multi'` works too.
 */
import MultiServer = require('./component');

// Without esModuleInterop, TypeScript compiles `import MultiServer from 'pixl-server-multi'`
// to `require('pixl-server-multi').default`. Not enumerable, so code walking the class's
// own keys sees nothing new.
Object.defineProperty(MultiServer, 'default', { value: MultiServer });

export = MultiServer;
