import { z } from 'zod';

// zod compiles object parsers with `new Function` when it may, and probes for that the first time an
// object schema is built. A page whose Content-Security-Policy allows no eval reports even the caught
// probe as a violation, so the browser build turns the compiler off before any schema module runs.
z.config({ jitless: true });
