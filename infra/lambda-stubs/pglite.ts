/**
 * Stands in for `@electric-sql/pglite` (and `/vector`) inside Lambda bundles. The composition root
 * imports the embedded-database adapter statically, but on Lambda the database is always PostgreSQL
 * (DATABASE_URL, or DATABASE_SECRET_ARN + DATABASE_HOST); bundling PGlite would add ~580 kB of code
 * that never runs. If it ever is reached, it says why instead of failing obscurely.
 */
const unavailable = (): never => {
  throw new Error(
    'PGlite is not bundled into the Lambda functions: configure DATABASE_URL, or DATABASE_SECRET_ARN and DATABASE_HOST',
  );
};

export class PGlite {
  constructor() {
    unavailable();
  }

  static async create(): Promise<never> {
    return unavailable();
  }
}

export const vector = { name: 'pgvector', setup: unavailable };
