// What the app's routes use of the home feature.
export { HomePage } from './components/HomePage';
export { TypePage } from './components/TypePage';
