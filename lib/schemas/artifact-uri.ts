import { z } from 'zod';

/** A store-relative `artifact://` URI (what results carry); every worker resolves it against its own artifact store. */
export const artifactUriSchema = (what: string) => z.string().startsWith('artifact://', `must be an artifact:// URI of ${what}`);
