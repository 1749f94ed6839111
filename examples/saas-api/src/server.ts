// Starts the example API. Configuration from the environment:
//   PGHOST, PGPORT, PGDATABASE    the database (libpq variables, read by pg)
//   SAAS_APP_PASSWORD             password of saas_app (serves requests)
//   SAAS_ADMIN_PASSWORD           password of saas_admin (provisions tenants)
//   JWT_SECRET                    HS256 secret of the tokens
//   HOST, PORT                    where to listen (default 127.0.0.1:3000; PORT=0 picks a free port)
import { Pool } from 'pg';
import { createApp } from './app';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

const pool = new Pool({ user: 'saas_app', password: required('SAAS_APP_PASSWORD'), max: 10 });
const adminPool = new Pool({ user: 'saas_admin', password: required('SAAS_ADMIN_PASSWORD'), max: 2 });
const app = createApp({ pool, adminPool, jwtSecret: required('JWT_SECRET') });

const host = process.env.HOST ?? '127.0.0.1';
const server = app.listen(Number(process.env.PORT ?? 3000), host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : process.env.PORT;
  console.log(`saas-api listening on http://${host}:${port}`);
});

// Stop cleanly on SIGTERM/SIGINT: no new requests, open ones finish, pools close.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close(() => void Promise.all([pool.end(), adminPool.end()]).then(() => process.exit(0)));
  });
}
