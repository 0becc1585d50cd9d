/**
 * The iommufd object table (drivers/iommu/iommufd/main.c): one per open iommufd.
 *
 * Models: ids from 1 handed out in order and never reused within a context; an object is
 * entered only once fully built (iommufd_object_finalize), so a failed allocation leaves no
 * id behind; typed lookups (missing, or of another type → ENOENT); `users` counts the
 * dependents holding a reference (HWPT → IOAS, nested → parent, attachment → HWPT,
 * HWPT → fault, vIOMMU → parent, vDEVICE → vIOMMU, an open fault fd → its object), and
 * destroy refuses with EBUSY while any is held.
 * Does not model: short-term users and the wait for them (the coordinator is one thread),
 * object ids shared between contexts (each context numbers its own).
 */
import { simError } from '../../shared/errors.js';

export type ObjType = 'ioas' | 'device' | 'hwpt-paging' | 'hwpt-nested' | 'fault' | 'viommu' | 'vdevice' | 'veventq';

export abstract class IommufdObject {
  id = 0;
  /** References held by dependents (the table's own is not counted). */
  users = 0;
  abstract readonly type: ObjType;
  /** Releases what the object holds; called once, after it left the table. */
  abstract release(): Promise<void> | void;
}

export class ObjectTable {
  private nextId = 1;
  private readonly objects = new Map<number, IommufdObject>();

  /** iommufd_object_finalize: the object becomes visible with the next id. */
  add<T extends IommufdObject>(o: T): T {
    o.id = this.nextId++;
    this.objects.set(o.id, o);
    return o;
  }

  /** The object `id` if it is one of `types`; ENOENT otherwise. */
  get<T extends IommufdObject>(id: number, types: readonly ObjType[], op: string, what = 'id'): T {
    const o = this.objects.get(id);
    if (o === undefined || !types.includes(o.type)) throw simError('ENOENT', op, 'no-such-object', `${what} ${id} is not a ${types.join(' or ')}`);
    return o as T;
  }

  /** Any object, or undefined. */
  find(id: number): IommufdObject | undefined {
    return this.objects.get(id);
  }

  has(o: IommufdObject): boolean {
    return this.objects.get(o.id) === o;
  }

  /** Removes `o` (its users must be 0) and releases it. */
  async remove(o: IommufdObject, op: string): Promise<void> {
    if (o.users > 0) throw simError('EBUSY', op, 'object-in-use', `${o.type} ${o.id} has ${o.users} users`);
    this.objects.delete(o.id);
    await o.release();
  }

  /** Every live object, newest first. */
  newestFirst(): IommufdObject[] {
    return [...this.objects.values()].reverse();
  }

  get size(): number {
    return this.objects.size;
  }
}
