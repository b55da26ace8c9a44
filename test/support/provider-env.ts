import type { FakeGoogle } from './fake-google';
import type { FakeMicrosoft } from './fake-microsoft';

/** The environment a deployment sets for its OAuth clients, pointed at the local fakes. */
export function providerEnv(google: FakeGoogle, microsoft: FakeMicrosoft): Record<string, string> {
  return {
    GOOGLE_CLIENT_ID: google.clientId,
    GOOGLE_CLIENT_SECRET: google.clientSecret,
    GOOGLE_API_BASE_URL: `${google.url}/`,
    GOOGLE_OAUTH_BASE_URL: google.url,
    GOOGLE_AUTHORIZE_URL: `${google.url}/o/oauth2/v2/auth`,
    MS_CLIENT_ID: microsoft.clientId,
    MS_CLIENT_SECRET: microsoft.clientSecret,
    MS_GRAPH_BASE_URL: microsoft.url,
    MS_LOGIN_BASE_URL: microsoft.url,
  };
}
